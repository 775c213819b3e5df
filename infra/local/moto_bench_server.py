"""moto for the scale benchmarks (mailroom-bench requests --accounts N): the local stack's
serialised server (moto_server_serial.py), with TransactWriteItems backing up each table once
per transaction instead of once per item. moto deep-copies the whole table for every item of a
transaction, which over 10,000 accounts costs seconds and hundreds of MB per email; the rollback
semantics are the same. Usage: python moto_bench_server.py PORT (binds 127.0.0.1).
"""

import inspect
import os
import runpy
import sys
import textwrap

import moto.dynamodb.models as models

source = textwrap.dedent(inspect.getsource(models.DynamoDBBackend.transact_write_items))
once = "if table_name and table_name in self.tables:\n"
if source.count(once) != 1:
    sys.exit("moto_bench_server: this moto's transact_write_items changed; patch not applied")
source = source.replace(
    once,
    "if table_name and table_name in self.tables and table_name not in original_table_state:\n",
)
namespace = {}
exec(compile(source, models.__file__, "exec"), models.__dict__, namespace)
models.DynamoDBBackend.transact_write_items = namespace["transact_write_items"]

sys.argv = ["moto_server_serial.py", "127.0.0.1", sys.argv[1]]
runpy.run_path(
    os.path.join(os.path.dirname(os.path.abspath(__file__)), "moto_server_serial.py"),
    run_name="__main__",
)
