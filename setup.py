"""Package discovery for the product layout.

training/, evalsuite/, serve/ and model_cards/ sit at the top of the repository but are installed inside
the xplus_release namespace (imports read ``xplus_release.evalsuite...``), so the distribution claims no
generic top-level names. Everything else about the build lives in pyproject.toml.
"""

from setuptools import find_packages, setup

NAMESPACED_FOLDERS = ("training", "evalsuite", "serve", "model_cards")

packages = find_packages(include=["xplus_release", "xplus_release.*"])
package_dir = {"xplus_release": "xplus_release"}
for folder in NAMESPACED_FOLDERS:
    name = f"xplus_release.{folder}"
    package_dir[name] = folder
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(where=folder)]

setup(packages=packages, package_dir=package_dir)
