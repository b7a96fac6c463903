"""Support Copilot: the agent workspace (``streamlit run app.py``).

Thin by design: the page lives in :mod:`copilot.ui.workspace`; services come from one
``@st.cache_resource`` factory there, and session state is set up behind one init guard
(:func:`copilot.ui.state.init_state`). The server listens on 127.0.0.1 by default
(``.streamlit/config.toml``).
"""

from copilot.ui.workspace import main

main()
