"""The CMS: a stand-in for Directus, and visitors with the unusual sessions it can make."""
