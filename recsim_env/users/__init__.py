"""User models: fitted from logs (`fitted`), synthetic ground truth (`synthetic`), one-user adapter."""
