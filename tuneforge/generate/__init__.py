"""tuneforge data generate: synthetic training data from a teacher model (see tuneforge.generate.run)."""
