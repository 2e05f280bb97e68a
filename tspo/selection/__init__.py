"""Selecting frames with a trained selector: the selector, its files and hub I/O, zoom, reflection, export."""
