"""The vizkit Streamlit dashboard (``streamlit run dashboards/app.py``)."""
