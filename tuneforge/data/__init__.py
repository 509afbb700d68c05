"""Data: sources -> format converters -> Conversation/Document -> renderer -> ids + labels."""
