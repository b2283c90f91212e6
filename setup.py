"""Maps the design-card folders onto one ``geovr`` package (metadata lives in pyproject.toml).

``extract/`` -> ``geovr.extract``, ``train/`` -> ``geovr.train`` and so on, so no top-level
package named ``train`` or ``shared`` ever lands in site-packages. Subpackages are found
automatically, so adding a folder with an ``__init__.py`` needs no edit here.
"""

from setuptools import find_packages, setup

PACKAGE_DIRS = {
    "geovr": "geovr",
    "geovr.shared": "shared",
    "geovr.extract": "extract",
    "geovr.train": "train",
    "geovr.evaluate": "evaluate",
    "geovr.synth": "synth",
    "geovr.corpora": "corpora",
}

packages = []
for name, folder in PACKAGE_DIRS.items():
    packages.append(name)
    packages += [f"{name}.{sub}" for sub in find_packages(folder)]

# data-only folders shipped as packages of their own (setuptools would otherwise warn that they are importable
# but not listed)
packages += ["geovr.shared.schemas", "geovr.train.recipes"]

setup(
    packages=packages,
    package_dir=PACKAGE_DIRS,
    package_data={"geovr.shared.schemas": ["*.json"], "geovr.train.recipes": ["*.yaml"]},
)
