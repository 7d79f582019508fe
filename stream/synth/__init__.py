"""A synthetic organisation with ground truth (issue 7).

``organisation``  staff, stations, teams, cases and the reference files that describe them
``behaviour``     one member of staff's ordinary working days as a time-ordered stream of events
``scenarios``     insider scenarios injected into chosen staff's streams, with their ground truth
``render``        planned activities -> canonical audit events and managed-device notifications
``generate``      the whole organisation merged into sorted files, in constant memory
``demo``          a live stream of the same organisation into the broker (``custodes run --demo``)
``cli``           the ``custodes generate`` and ``custodes evaluate`` commands (``COMMANDS``)
"""
