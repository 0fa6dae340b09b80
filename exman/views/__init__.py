"""The runs of a root on a web page: ``exman report`` (one HTML file) and
``exman ui`` (the same page, served live). Both draw from one function over
:class:`exman.Index`: :func:`exman.views.data.payload`.
"""
