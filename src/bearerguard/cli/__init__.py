"""The command line: `bearerguard check` (explain a token) and `bearerguard demo`.

Tools, not the request path: nothing under the package's request path imports from here
(tests/test_layout.py holds that). `bearerguard/__main__.py` parses the arguments and imports a
command only when it runs.
"""
