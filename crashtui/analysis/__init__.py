"""crashtui."""
