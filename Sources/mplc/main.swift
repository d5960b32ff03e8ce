print("mplc")
