"""The SpRecord MiniPBX integration."""
