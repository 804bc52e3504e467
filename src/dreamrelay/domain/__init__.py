"""Pure rules of the product: states, errors, pricing. Imports nothing else of ours."""
