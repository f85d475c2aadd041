"""The viewer: `runbridge ui` (a local, read-only web app, `app`), `runbridge report` (one
self-contained HTML file, `report`) and notebook display (`widgets`), over any backends.

Its own layer, between the azureml classes (which it reads runs through) and the command line.
Needs the ``ui`` extra (Flask, Jinja2, matplotlib); importing this package loads none of them.
"""
