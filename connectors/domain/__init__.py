"""Domain code lists and validators shared by sources, the generator and the API."""
