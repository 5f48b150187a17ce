"""Property tests over the parsers and formats that meet untrusted input."""
