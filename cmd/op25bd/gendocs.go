package main

import "io"

// generateDocs is a placeholder until the man page generator lands.
func generateDocs(args []string, stdout, stderr io.Writer) (int, bool) { return 0, false }
