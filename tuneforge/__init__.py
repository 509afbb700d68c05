"""tuneforge: from a YAML file to a fine-tuned, measured, exported model.

Flow: config -> data (formats -> conversations -> renderer -> ids+labels) -> model + method
-> stage trainer -> artifacts. `tuneforge.cli` is the entry point.
"""

__version__ = "0.1.0"
