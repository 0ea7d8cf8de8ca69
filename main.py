from source_dixa.run import run

if __name__ == "__main__":
    run()
