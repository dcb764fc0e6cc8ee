"""Pure, streaming readers and writers for the file formats partners send."""
