"""Helpers every layer of numlstm may use: settings, input validation, memory checks,
atomic files, shared docstrings, CUDA availability. Nothing here imports the rest of the
package."""
