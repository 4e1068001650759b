"""``xplus-eval view``: a Gradio explorer over run folders as they are on disk (see ``app.build_view``)."""
