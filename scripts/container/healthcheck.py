"""The image's HEALTHCHECK: exit 0 when xplus-serve's ``/health`` answers 200 (vLLM up and answering).

``/health`` sits behind the API key like every route, so the check sends one: ``$XPLUS_HEALTHCHECK_KEY``
(a key of its own, for a server that reads its keys from a file), else ``$XPLUS_API_KEY``. Standard
library only: it runs every interval inside the container and must start fast.
"""

import os
import sys
import urllib.error
import urllib.request


def main() -> int:
    url = f"http://127.0.0.1:{os.environ.get('XPLUS_PORT', '8000')}/health"
    key = os.environ.get("XPLUS_HEALTHCHECK_KEY") or os.environ.get("XPLUS_API_KEY")
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {key}"} if key else {})
    try:
        with urllib.request.urlopen(request, timeout=5) as reply:
            return 0 if reply.status == 200 else 1
    except (urllib.error.URLError, OSError) as err:
        print(f"{url}: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
