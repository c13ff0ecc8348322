"""`toyvisor debug`: a monitor that runs a guest forwards and backwards, natively or under a VMM.

`Session` (session.py) is the Python API: breakpoints, watchpoints, catchpoints, stepping and
reverse execution by replay from checkpoints; `World` (world.py) is the system it runs;
`Inspector` (inspect.py) reads it without disturbing it; `Monitor` (monitor.py) is the command
language that the CLI (`toyvisor.tools.debug_cli`) and scripts drive.
"""

from .session import Frame, Point, Session, Stop
from .world import DebugError, World

__all__ = ["DebugError", "Frame", "Point", "Session", "Stop", "World"]
