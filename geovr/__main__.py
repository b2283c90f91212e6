from geovr.cli import app

app()
