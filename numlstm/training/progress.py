"""What a fit shows while it runs (``verbose``): a tqdm bar over epochs on a terminal,
one printed line per epoch elsewhere."""

import sys

__all__ = ["progress_bar", "report_epoch", "say"]


def progress_bar(verbose, total, initial, desc):
    """A tqdm progress bar over epochs when ``verbose``, tqdm is installed and the output
    is a terminal; None otherwise (one printed line per epoch then)."""
    if not verbose:
        return None
    try:
        interactive = sys.stdout.isatty()
    except (AttributeError, ValueError):
        interactive = False
    if not interactive:
        return None
    try:
        from tqdm import tqdm
    except ImportError:
        return None
    return tqdm(total=total, initial=initial, unit="epoch", file=sys.stdout,
                desc=desc, dynamic_ncols=True)


def report_epoch(verbose, bar, epoch, loss, val_score, seconds):
    """Show the end of an epoch: on the bar, or as a printed line."""
    if not verbose:
        return
    shown = "n/a" if val_score is None else f"{val_score:.6f}"
    if bar is not None:
        bar.set_postfix(loss=f"{loss:.6f}", validation=shown, refresh=False)
        bar.update(1)
    else:
        print(f"Epoch {epoch}: loss = {loss:.6f}, validation score = "
              f"{shown}, {seconds:.2f} s", flush=True)


def say(bar, msg):
    """Print ``msg`` (above the bar, when there is one)."""
    if bar is not None:
        bar.write(msg)
    else:
        print(msg, flush=True)
