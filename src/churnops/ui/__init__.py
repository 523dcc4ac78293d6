"""The Streamlit UI (`make ui`): score customers, read the model card, watch drift."""
