"""crashtui's fuzz harness (see fuzz/README.md)."""
