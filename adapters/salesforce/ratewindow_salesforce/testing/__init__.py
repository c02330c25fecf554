"""A local fake of the Salesforce REST API for testing with the real ``simple-salesforce`` client.

``FakeSalesforce`` serves HTTPS on 127.0.0.1 with a throw-away CA, answers the REST resources a
client needs (versions, limits, describes, records, SOQL query/queryAll with paging, Tooling
query, Composite, Composite Batch, sObject Collections) from deterministic generated data, and
enforces the org-wide limits Salesforce enforces: the rolling 24-hour API allocation, reported in
``Sforce-Limit-Info`` on every response, and the cap on concurrent long-running requests.
``fake.stats`` records every request for assertions.

This subpackage needs only the standard library and ``trustme`` (``requests`` for
``FakeSalesforce.session()``); it does not import ``ratewindow``.
"""

from ratewindow_salesforce.testing._data import RECORD_COUNTS, SOBJECT_COUNT
from ratewindow_salesforce.testing._server import FakeSalesforce
from ratewindow_salesforce.testing._stats import FakeSalesforceStats, RequestRecord

__all__ = ["RECORD_COUNTS", "SOBJECT_COUNT", "FakeSalesforce", "FakeSalesforceStats", "RequestRecord"]
