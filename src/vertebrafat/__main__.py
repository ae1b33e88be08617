from vertebrafat.cli import run

run()
