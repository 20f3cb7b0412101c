"""The sandbox page: static HTML, CSS and JavaScript served at /sandbox (a package so it is installed)."""
