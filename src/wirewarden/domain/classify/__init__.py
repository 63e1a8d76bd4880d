"""Naming what a connection is from its first payloads: pure parsers, no I/O.

The queue reader (a driver) hands each flow's first payloads here, in order, and acts on
the verdict. Parsers never raise on hostile bytes: anything they cannot read is "not
this protocol", and a flow nothing claims after a few packets is `other`.
"""
