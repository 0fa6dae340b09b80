"""Sphinx configuration for the exman documentation."""

import os
import sys

project = "exman"
author = "exman contributors"
copyright = "exman contributors"

# local extensions: exman_help renders the live --help of the exman command
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "_ext"))

extensions = [
    "sphinx.ext.autodoc",
    "sphinx.ext.napoleon",
    "exman_help",
]

html_theme = "alabaster"
autodoc_typehints = "description"
nitpicky = False
exclude_patterns = ["_build"]
