"""The lab's screens (modes) and dialogs; each module is imported when first shown."""
