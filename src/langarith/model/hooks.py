"""Forward hooks as a context manager: registered on entry, always removed on exit (also when
the block raises, or when registering one of them fails)."""

from __future__ import annotations

from collections.abc import Callable, Iterable

from torch import nn


class ForwardHooks:
    """Base of the recording and steering hooks: a subclass says which hook goes on which
    module (:meth:`hooks`); ``with`` registers them all for the block."""

    def hooks(self) -> Iterable[tuple[nn.Module, Callable]]:
        raise NotImplementedError

    def __enter__(self):
        self._handles = []
        try:
            for module, hook in self.hooks():
                self._handles.append(module.register_forward_hook(hook))
        except BaseException:
            self.__exit__()
            raise
        return self

    def __exit__(self, *exc) -> None:
        for handle in getattr(self, "_handles", []):
            handle.remove()
        self._handles = []
