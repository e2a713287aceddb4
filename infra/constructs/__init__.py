"""One construct per capability; ``infra.stack.InterlockStack`` composes them."""
