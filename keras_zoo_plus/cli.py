"""``keras-zoo-plus`` command line."""

from __future__ import annotations

import argparse
import sys


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        # One line, exit code 2, no usage dump.
        sys.stderr.write(f"keras-zoo-plus: error: {message}\n")
        raise SystemExit(2)


def _cmd_list(args):
    from keras_zoo_plus import registry

    for name in registry.list_models(args.pattern):
        print(name)
    return 0


def _cmd_info(args):
    from keras_zoo_plus import registry

    try:
        info = registry.model_info(args.model)
    except ValueError as exc:
        sys.stderr.write(f"keras-zoo-plus: error: {exc}\n")
        return 2
    print(f"name:          {info.name}")
    print(f"constructor:   keras_zoo_plus.applications.{info.constructor_name}")
    print(f"family:        {info.family}")
    print(f"parameters:    {info.params:,}")
    print(f"default size:  {info.default_size}")
    print(f"minimum size:  {info.min_size}")
    print(f"preprocess:    {info.preprocess}")
    for kind, wf in info.weight_files().items():
        print(f"weights {kind:5s}: {wf.fname} (md5 {wf.md5 or 'unpublished'})")
    return 0


def build_parser():
    parser = _Parser(prog="keras-zoo-plus", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    p = sub.add_parser("list", help="list registered models")
    p.add_argument("pattern", nargs="?", default="*", help="wildcard, e.g. 'resnet*'")
    p.set_defaults(func=_cmd_list)
    p = sub.add_parser("info", help="describe one model")
    p.add_argument("model")
    p.set_defaults(func=_cmd_info)
    from keras_zoo_plus import bench

    bench.add_parser(sub)
    return parser


def main(argv=None):
    args = build_parser().parse_args(argv)
    return args.func(args)


if __name__ == "__main__":
    sys.exit(main())
