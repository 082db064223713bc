"""tga.profiler: torch.profiler's names. Time and bytes per op, forward and backward.

    with tga.profiler.profile() as prof:
        loss = model(x).sum(); loss.backward()
    print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=20))
    prof.export_chrome_trace("trace.json")         # chrome://tracing or ui.perfetto.dev

recorder.py records (profile, record_function, schedule, tensorboard_trace_handler);
events.py holds the results (FunctionEvent, EventList: key_averages, table, Chrome trace).
"""
from .events import EventList, FunctionEvent, FunctionEventAvg
from .recorder import (ProfilerAction, ProfilerActivity, profile, record_function, schedule,
                       supported_activities, tensorboard_trace_handler)

__all__ = ["EventList", "FunctionEvent", "FunctionEventAvg", "ProfilerAction",
           "ProfilerActivity", "profile", "record_function", "schedule",
           "supported_activities", "tensorboard_trace_handler"]
