"""sleeve's web app: Streamlit pages over the library (recsys, index, analysis), with no model or index logic
of its own. ``launch.run_app`` starts it as a user would (``streamlit run webapp/app.py``)."""
