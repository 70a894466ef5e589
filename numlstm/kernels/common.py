"""What the CPU and CUDA kernels share besides the gate nonlinearities: the cell codes and
the order in which a sweep visits the timesteps."""

from numba import njit

__all__ = ["CELL_CODES", "CELL_GRU", "CELL_LSTM", "CELL_RNN_RELU", "CELL_RNN_TANH", "N_GATES",
           "step_order"]

#: Cell codes understood by the kernels.
CELL_LSTM = 0
CELL_GRU = 1
CELL_RNN_TANH = 2
CELL_RNN_RELU = 3
CELL_CODES = {"lstm": CELL_LSTM, "gru": CELL_GRU, "rnn_tanh": CELL_RNN_TANH,
              "rnn_relu": CELL_RNN_RELU}
#: Gates per cell code.
N_GATES = (4, 3, 1, 1)


@njit(cache=True, nogil=True)
def step_order(t_index, n_steps, reverse):
    """Timestep processed at position ``t_index`` of a sweep (shared with the CUDA kernels)."""
    return n_steps - 1 - t_index if reverse else t_index
