"""What arrives, where and when: notification categories, the company's defaults and locks
for each category and channel, and each member's own choices (issue 16).

``notifications/routing.py`` turns these into a route for each notification. The pages are in
``views.py``, whose blueprint the app registers; this package itself stays import-light so the
notification pipeline can use its models and services without loading any view.
"""
