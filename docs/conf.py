"""Sphinx configuration: the API reference, built from the docstrings."""

from __future__ import annotations

import securememory

project = "securememory"
release = version = securememory.__version__
extensions = ["sphinx.ext.autodoc"]
autodoc_member_order = "bysource"
autodoc_typehints = "description"
autodoc_default_options = {"members": True, "undoc-members": False, "show-inheritance": True}
exclude_patterns = ["_build"]
html_theme = "alabaster"
nitpicky = False
