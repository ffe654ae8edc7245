"""Files in conversations: uploads, their storage, and serving them to those who may see them."""
