"""Typed errors raised at the package's boundaries.

Every error carries the fix in its message, so the CLI can print it as one line and exit non-zero
(``xplus_release.cli.run_cli``) and the server can turn it into a 4xx JSON body.
"""


class XPlusError(Exception):
    """Base of every error the package reports to a user. ``str(err)`` is one line that names the fix."""

    exit_code = 2


class ConfigError(XPlusError):
    """A recipe, pipeline or CLI option is invalid (unknown key, wrong type, out of range)."""


class UnknownLanguageError(XPlusError, KeyError):
    """A language code, name or label that the language table does not know."""

    def __str__(self) -> str:  # KeyError would quote the message
        return str(self.args[0])


class UnknownModelError(XPlusError):
    """A model name that is neither registered, a local folder, nor in the Hugging Face cache."""


class MissingAssetError(XPlusError):
    """A model, dataset or file that is not on this machine (offline, or never fetched)."""


class EndpointError(XPlusError):
    """An OpenAI-compatible endpoint that is unreachable, or answered with an error."""


class ServerStartError(XPlusError):
    """A vLLM server that exited or never became healthy."""


class RunFolderError(XPlusError):
    """A run folder that is malformed or belongs to another model or configuration."""


class ModelFolderError(XPlusError):
    """A model folder that is incomplete, holds pickle weights, secrets or files outside the upload allow-list."""


class HubError(XPlusError):
    """A Hub operation that cannot start (bad repo id, no token, offline) or that the Hub refused."""


class EngineGaveUpError(XPlusError):
    """A supervised vLLM server that kept exiting: more restarts than its budget allows (``--max-restarts``).

    Exit status 1, like any service that gives up, so that a process supervisor (systemd, Kubernetes) takes over.
    """

    exit_code = 1
