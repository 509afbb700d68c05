"""tuneforge ui: the local web page (see tuneforge.ui.app)."""
