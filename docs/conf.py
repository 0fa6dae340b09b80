"""Sphinx configuration for the exman documentation."""

project = "exman"
author = "exman contributors"
copyright = "exman contributors"

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
]

html_theme = "alabaster"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build"]
