"""Loading a library: walk the folder, read front matter of both schema generations, split sections."""
