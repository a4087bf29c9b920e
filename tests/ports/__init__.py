"""Real TF1 models written elsewhere, ported to jaxscope with the fewest edits."""
