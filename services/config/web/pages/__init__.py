"""The console's pages, one module per page (or tab) and the forms it sends."""
