"""The `tinygradattn` command (also `python -m tinygradattn`).

    tinygradattn train [--task moons] [--steps N] [--lr LR] [--hidden H] [--seed S]

Importing this module is cheap: the task (and with it the tensor library) is imported only
when a command runs. Bad arguments give one line on stderr and exit code 2, never a traceback.
"""
import argparse
import math
import sys

from .tasks import TASKS


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is one line on stderr (no usage dump) and exit code 2."""

    def error(self, message):
        self.exit(2, f"{self.prog}: error: {message} (see '{self.prog} --help')\n")


def _positive(kind):
    """An argparse type: a number of `kind` (int or float) that is > 0."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(
                f"expected a{'n integer' if kind is int else ' number'}, got {text!r}") from None
        if not (value > 0 and math.isfinite(value)):
            raise argparse.ArgumentTypeError(
                f"must be {'an integer' if kind is int else 'a finite number'} > 0, got {text!r}")
        return value
    parse.__name__ = kind.__name__
    return parse


def _integer(text):
    try:
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None


def build_parser():
    parser = _Parser(prog="tinygradattn",
                     description="tinygradattn: a from-scratch autograd library. "
                                 "Commands train small models on the CPU.")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    train = sub.add_parser("train", help="train a model on a built-in task and print its "
                                         "accuracy", description="Train a model on a built-in "
                                         "task; prints progress and the final accuracy.")
    train.add_argument("--task", default="moons", choices=sorted(TASKS),
                       help="task to train (default: %(default)s): moons = a 2-hidden-layer "
                            "MLP on the two-moons 2-D toy dataset")
    train.add_argument("--steps", type=_positive(int), default=300,
                       help="optimizer steps (default: %(default)s)")
    train.add_argument("--lr", type=_positive(float), default=0.02,
                       help="Adam learning rate (default: %(default)s)")
    train.add_argument("--hidden", type=_positive(int), default=32,
                       help="width of each hidden layer (default: %(default)s)")
    train.add_argument("--seed", type=_integer, default=0,
                       help="seed of the data and the initial weights (default: %(default)s)")
    return parser


def _train(args):
    from .tasks import get_task
    train_fn = get_task(args.task)
    metrics = train_fn(steps=args.steps, hidden=args.hidden, lr=args.lr, seed=args.seed,
                       log=print)
    print(f"final: task {args.task}  train accuracy {metrics['train_acc']:.4f}  "
          f"test accuracy {metrics['test_acc']:.4f}")
    return 0


def main(argv=None):
    """Entry point of the console script; returns the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command is None:
        parser.error("missing command (one of: train)")
    try:
        return _train(args)
    except KeyboardInterrupt:
        print("tinygradattn: interrupted", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
