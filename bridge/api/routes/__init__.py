"""The POS API's routes, one module per resource; each holds an `APIRouter`.

A route's handler is a plain function that gets the register through a FastAPI
dependency (`deps.register_of`), so one router can be mounted on a bare FastAPI app
and tested alone.  The till's body-less cheque actions (`cheques.LANE`) are called by
the front door's lane with the register as first argument: the same code, without
FastAPI's dependency solving on the till's every call.
"""
