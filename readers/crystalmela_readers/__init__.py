"""crystalmela's file readers, one module per format, registered through the ``crystalmela`` entry point."""
